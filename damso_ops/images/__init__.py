"""damso build: refs → commits (sources) → images in the registry (images, engine) → a build manifest (manifest); pipeline.py runs it."""
