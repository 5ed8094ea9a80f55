"""``python -m synthetic OUT_DIR -n N --seed S --broken F``: write a synthetic corpus."""

from synthetic.generator import main

raise SystemExit(main())
