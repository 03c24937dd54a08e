"""Grading: the pytest plugin that turns failures into messages for the learner, the helpers grader
modules use to call the learner's code, and the runner behind `workshop check`."""
