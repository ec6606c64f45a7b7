"""Hosts damso steers beyond a deploy: the LiveKit server, GPU dev boxes, EC2 power and prices."""
