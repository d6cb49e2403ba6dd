//! Why a ruleset could not be encoded.

/// Why a ruleset could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// The unrolled ruleset exceeds the size budget.
    #[error("the ruleset unrolls to more than {0} rule instances; too large to encode")]
    TooLarge(usize),
    /// More interface names than the enumeration holds.
    #[error("the ruleset names more than 60000 interfaces")]
    TooManyInterfaces,
}
