//! Sans-IO Receptor mesh core.
