"""Per-scheme normalizers: native proof formats in, one common envelope out."""
