from pathlib import Path
def draw_autoregressive(out, work, *, progress=False): return []
