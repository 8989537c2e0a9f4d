"""Analysis of recorded runs. Reads results/ only; imports neither torch nor model/."""
