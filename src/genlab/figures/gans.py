from pathlib import Path
def draw_gan(out, work, *, progress=False): return []
