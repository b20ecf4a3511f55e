"""Rules that read the static sections: parameters, layers, FLOPs, memory."""
