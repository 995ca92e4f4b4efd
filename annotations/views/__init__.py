"""HTML views, one module per area; thin: parse, check permission, call one service or selector, render."""
