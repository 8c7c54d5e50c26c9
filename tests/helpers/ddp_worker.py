"""Run under torchrun (or alone): train a config and save this rank's final parameters.

python -m torch.distributed.run --standalone --nproc_per_node=2 ddp_worker.py OUT [overrides]
"""

import os
import sys

from safetensors.torch import save_file

from scorelab.config import load_config
from scorelab.pipeline import make_trainer

out = sys.argv[1]
cfg = load_config(None, sys.argv[2:])
trainer, _ = make_trainer(cfg, None)
trainer.fit()
rank = int(os.environ.get("RANK", "0"))
tag = f"rank{rank}" if trainer.world.distributed else "single"
state = {k: v.detach().contiguous() for k, v in trainer.model.state_dict().items()}
state.update({f"ema.{k}": v.contiguous() for k, v in trainer.ema.items()})
save_file(state, os.path.join(out, f"{tag}.safetensors"))
trainer.world.close()
