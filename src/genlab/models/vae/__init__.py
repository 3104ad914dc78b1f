"""The variational autoencoder family (``vae``): ELBO and importance-weighted bounds,
Gaussian, Bernoulli, categorical and discretised-logistic decoders, MLP and conv networks."""

from genlab.models.vae.model import VAE

__all__ = ["VAE"]
