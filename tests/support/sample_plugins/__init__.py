"""Small plugins the tests load: a stub framework, tiny torch and Keras backbones, a one-class dataset
adapter. They are fixtures, not tests (tests of the plugin machinery: tests/plugin/; of the bundled
adapters and the conformance suite: tests/adapters/)."""
