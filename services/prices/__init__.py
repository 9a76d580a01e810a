"""Prices: tariffs from the operators' business policies (T/CEC 102 part 3) or their fee texts,
kept in versions so the price in force at any past moment is known, and the city's price cap."""
