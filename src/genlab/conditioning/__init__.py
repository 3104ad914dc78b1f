"""Conditions ``y`` of a conditional model p(x | y) beyond a class label.

A condition has a *kind*, one of :data:`CONDITION_KINDS`, and is held as one or two tensors
with a leading batch dimension n (the keys of :data:`KEYS`):

=========  ===========================  ===================================================
kind       keys                         values
=========  ===========================  ===================================================
label      ``label``                    int64 ``(n,)``, a class in ``[0, num_classes)``
sketch     ``sketch``                   float ``(n, 1, H, W)`` in {0, 1} (a line drawing)
lowres     ``lowres``                   float ``(n, 1, H, W)``, block means of the image
mask       ``mask``, ``masked``         float ``(n, 1, H, W)`` in {0, 1}, 1 on known
                                        pixels, and ``masked = x * mask`` ``(n, C, H, W)``
prompt     ``prompt``, ``prompt_mask``  int64 token ids ``(n, L)`` and bool ``(n, L)``, True
                                        on words (the fixed :class:`~genlab.nn.text.Tokenizer`)
=========  ===========================  ===================================================

:class:`Conditions` is a read-only mapping from these keys to tensors that also indexes by
rows (``conditions[rows]``), moves (``.to(device)``), splits (``.chunk(k)``) and marks a
condition *absent* on some rows (:meth:`Conditions.drop`): for condition dropout in training
and for classifier-free guidance. Absent rows hold zeros (an all-False ``prompt_mask``); a
family reads :meth:`Conditions.present` to replace them by its own "no condition" input.

:func:`check_conditions` turns what a user passes as ``y`` (a mapping of tensors, arrays,
ints and prompt strings) into validated :class:`Conditions` for a model; the model's public
methods call it.
"""

from genlab.conditioning.conditions import (
    CONDITION_KINDS,
    IMAGE_KINDS,
    KEYS,
    Conditions,
    canonical_kinds,
    prompt_tokenizer,
)
from genlab.conditioning.user_input import check_conditions, random_conditions

__all__ = ["CONDITION_KINDS", "IMAGE_KINDS", "KEYS", "Conditions", "canonical_kinds",
           "check_conditions", "prompt_tokenizer", "random_conditions"]
