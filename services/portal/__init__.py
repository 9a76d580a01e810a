"""The public portal's content (news, page texts) and its statistics."""
