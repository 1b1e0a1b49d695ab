"""Text generation backends behind one small interface."""
