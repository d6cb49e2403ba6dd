//! SARIF 2.1.0 (being written).
