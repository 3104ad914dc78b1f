from pathlib import Path
def draw_conditional(out, work, *, progress=False): return []
