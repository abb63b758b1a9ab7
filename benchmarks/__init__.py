"""Side-by-side measurements of colorquant against its competitors (not tests)."""
