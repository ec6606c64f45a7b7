"""damso deploy and plan: request → secrets → stacks (terraform, workspace, stackops) → release (render, releases, store) → converge; target.py is the environment a command works on."""
