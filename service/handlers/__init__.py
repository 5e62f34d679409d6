"""HTTP handlers: parse the input, call one domain function, shape the answer."""
