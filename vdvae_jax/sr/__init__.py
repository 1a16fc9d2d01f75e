"""Super-resolution on a pretrained VDVAE: settings, VDVAE-SR, diverse SR, the course-report
baselines, tiling, the api and load_model (io.py). May import hparams, data and model; not
train or evaluate."""
