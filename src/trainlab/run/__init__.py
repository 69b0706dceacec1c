"""Running a job: the command line, building from a config, training and testing, resuming, what a run leaves."""
