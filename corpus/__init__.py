"""Source texts about calf cramps: the raw files, their cleaning and their passages."""
