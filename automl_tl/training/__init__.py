"""Training one trial: the engine that runs the phases, and the schedules, augmentation and metrics it uses."""
