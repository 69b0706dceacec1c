"""What a config may say: the rules of every key, the checks run before any job, lightning-hydra-template habits."""
