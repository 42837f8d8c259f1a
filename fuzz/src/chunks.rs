//! Cutting a stream into the pieces a socket might deliver.

/// Splits `stream` into pieces of the given sizes, used in a cycle; one piece
/// when `sizes` is empty. Sizes of 0 are treated as 1 so that the stream
/// always advances.
pub fn cut<'a>(stream: &'a [u8], sizes: &[usize]) -> Vec<&'a [u8]> {
    if sizes.is_empty() {
        return vec![stream];
    }
    let mut out = Vec::new();
    let mut rest = stream;
    for &size in sizes.iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let (piece, tail) = rest.split_at(size.max(1).min(rest.len()));
        out.push(piece);
        rest = tail;
    }
    out
}
