"""Training recipes for the bundled victims, and the zoo of trained weights."""
