from pathlib import Path
def draw_diffusion(out, work, *, progress=False): return []
