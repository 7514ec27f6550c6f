"""Activities -> alerts. One file per detector; `engine.DetectionEngine` runs them all."""
