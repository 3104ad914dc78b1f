from pathlib import Path
def draw_realnvp(out, work, *, progress=False): return []
