"""Speed of light: the machine's ceilings and each op's distance from them."""
