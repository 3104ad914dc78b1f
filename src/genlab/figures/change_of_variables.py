from pathlib import Path
def draw_change_of_variables(out, work, *, progress=False): return []
