"""Reading photos and clips, writing videos and files atomically, and the constants every layer shares."""
