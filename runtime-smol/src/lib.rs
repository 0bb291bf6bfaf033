//! smol runtime for receptor-core (filled by the binary issue).
