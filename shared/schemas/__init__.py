"""Every payload that crosses a process boundary (HTTP, Celery, Redis) is one model here, by
concern: `serving`, `training`, `models`, on the shared `base`. Training's own knobs
(`TrainParams`) live with training, in `shared.training.params`."""
