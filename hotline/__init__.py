"""blocker-hotline: a chat hotline that turns reported blockers into owned, dated tickets."""

__version__ = "0.1.0"
