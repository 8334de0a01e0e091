SELECT nope FROM clicks
