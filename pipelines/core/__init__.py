"""What every modality's pipeline shares, importing none of them: the denoising loop and its
acceleration, input validation (pipelines, CLIs and the app), atomic writes (training too),
batches and manifests, CLI plumbing, schedulers, the text encoder, media files."""
