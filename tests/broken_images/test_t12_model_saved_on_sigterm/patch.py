"""Exit on SIGTERM without saving the fitted model."""

from pathlib import Path

path = Path("/opt/program/iris_tree/train.py")
old = """        except Terminated:
            note = ""
            if progress.estimator is not None and not progress.saved:
                try:
                    save_model(root / "model", progress.estimator, progress.metadata or {})
                    note = "; the fitted model was saved"
                except Exception as exc:
                    note = f"; could not save the fitted model: {exc}"
            return fail(failure_path, f"training was stopped by SIGTERM before it finished{note}", 143)
"""
new = """        except Terminated:
            return fail(failure_path, "training was stopped by SIGTERM before it finished", 143)
"""
text = path.read_text()
assert old in text, f"patch does not apply to {path}"
path.write_text(text.replace(old, new, 1))
