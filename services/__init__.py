"""Domain services of zhcharge: settings, database access, errors and one package per domain."""
