"""Bad input gets a clear error naming the argument, the value and what is allowed."""

import pytest

from sb3_metarim import MetaRIMPPO

from .conftest import SMALL_CORE


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(policy_kwargs=dict(SMALL_CORE, top_k=5)), r"top_k=5: must be between 1 and num_units=4"),
        (dict(policy_kwargs=dict(SMALL_CORE, top_k=0)), r"top_k=0"),
        (dict(policy_kwargs=dict(SMALL_CORE, unit_size=0)), r"unit_size=0"),
        (dict(policy_kwargs=dict(SMALL_CORE, num_units=-2)), r"num_units=-2"),
        (dict(policy_kwargs=dict(SMALL_CORE, cell="rnn")), r"cell='rnn': must be one of \('lstm', 'gru'\)"),
        (dict(policy_kwargs=dict(SMALL_CORE, recurrent_core="transformer")), r"recurrent_core='transformer'"),
        (
            dict(policy_kwargs=dict(lstm_hidden_size=64, num_units=6, dense_size=0)),
            r"lstm_hidden_size - dense_size = 64 is not divisible",
        ),
        (dict(policy_kwargs=dict(SMALL_CORE, lstm_hidden_size=30)), r"lstm_hidden_size=30 and num_units=4, unit_size=8"),
        (dict(policy_kwargs=dict(SMALL_CORE, num_neurons=16)), r"num_neurons=16: an option of recurrent_core 'metods'"),
        (dict(policy_kwargs=dict(recurrent_core="metods", n_lstm_layers=2)), r"n_lstm_layers=2"),
        (dict(fast_span=0), r"fast_span=0: must be an integer >= 1"),
        (dict(slow_interval=-1), r"slow_interval=-1"),
        (dict(slow_n_epochs=0), r"slow_n_epochs=0"),
        (dict(slow_learning_rate=-1.0), r"slow_learning_rate=-1.0"),
        (dict(slow_max_kl=0.0), r"slow_max_kl=0.0: must be a positive number or None"),
        (dict(slow_parameters="attention"), r"slow_parameters='attention': must be a non-empty list"),
        (dict(slow_parameters=["("]), r"'\(' is not a valid regular expression"),
        (dict(slow_parameters=["no_such_parameter"]), r"slow_parameters=\['no_such_parameter'\]: matches no parameter"),
        (dict(slow_parameters=["."]), r"matches every parameter.*meta=False"),
        (dict(policy_kwargs=dict(recurrent_core="lstm"), slow_parameters=["attention"]), r"slow_parameters=.*matches no"),
    ],
)
def test_bad_argument_is_named(cue_env, kwargs, message):
    with pytest.raises(ValueError, match=message):
        MetaRIMPPO("MlpPolicy", cue_env, n_steps=8, batch_size=8, **kwargs)


def test_slow_parameters_are_not_checked_without_meta(cue_env):
    MetaRIMPPO("MlpPolicy", cue_env, n_steps=8, meta=False, slow_parameters=["no_such_parameter"], policy_kwargs=SMALL_CORE)
