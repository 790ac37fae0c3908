"""Training: recipes (:mod:`zoo.train.recipe`), data (:mod:`zoo.train.data`) and the loop
(:mod:`zoo.train.loop`). Nothing is imported here, so ``import zoo.train`` stays cheap: torch and
torchvision are imported by the modules that need them, when they are used."""
