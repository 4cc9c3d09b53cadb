//! Pagination of List RPCs: `page_size` (default 100, at most 1000) and opaque page tokens
//! that carry the key of the last item returned, so a page never repeats or skips an item
//! that existed when the listing began.

use base64::Engine as _;
use tonic::Status;

use super::status::invalid;

/// Items per page when the request gives no size.
pub const DEFAULT_PAGE_SIZE: usize = 100;
/// The largest page.
pub const MAX_PAGE_SIZE: usize = 1000;

/// A List request's page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    pub size: usize,
    /// The key after which this page starts.
    pub after: Option<String>,
}

impl PageRequest {
    /// Reads `page_size` and `page_token`.
    pub fn parse(page_size: i32, page_token: &str) -> Result<PageRequest, Status> {
        let size = match page_size {
            0 => DEFAULT_PAGE_SIZE,
            n if n < 0 => return Err(invalid("page_size", "must not be negative")),
            n => (n as usize).min(MAX_PAGE_SIZE),
        };
        let after = if page_token.is_empty() {
            None
        } else {
            let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(page_token)
                .map_err(|_| invalid("page_token", "not a token this API returned"))?;
            Some(String::from_utf8(bytes).map_err(|_| invalid("page_token", "not a token this API returned"))?)
        };
        Ok(PageRequest { size, after })
    }

    /// How many items to fetch: one more than the page, to know whether another follows.
    pub fn fetch(&self) -> usize {
        self.size + 1
    }

    /// The page of `items` (fetched with [`PageRequest::fetch`], in order) and the token of
    /// the next page (empty on the last).
    pub fn finish<T>(&self, mut items: Vec<T>, key: impl Fn(&T) -> String) -> (Vec<T>, String) {
        if items.len() <= self.size {
            return (items, String::new());
        }
        items.truncate(self.size);
        let token = items.last().map(|last| token(&key(last))).unwrap_or_default();
        (items, token)
    }

    /// A page of an in-memory list whose items have unique, ordered `key`s.
    pub fn of_slice<T: Clone>(&self, items: &[T], key: impl Fn(&T) -> String) -> (Vec<T>, String) {
        let start = match &self.after {
            Some(after) => items.iter().position(|item| key(item) > *after).unwrap_or(items.len()),
            None => 0,
        };
        let end = (start + self.fetch()).min(items.len());
        self.finish(items[start..end].to_vec(), key)
    }
}

/// The token of the page after `key`.
pub fn token(key: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_carry_a_token_until_the_last() {
        let page = PageRequest::parse(2, "").unwrap();
        let items: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        let (first, next) = page.of_slice(&items, Clone::clone);
        assert_eq!(first, ["a", "b"]);
        let page = PageRequest::parse(2, &next).unwrap();
        assert_eq!(page.after.as_deref(), Some("b"));
        let (second, last) = page.of_slice(&items, Clone::clone);
        assert_eq!((second, last), (vec!["c".to_owned()], String::new()));
    }

    #[test]
    fn sizes_are_bounded_and_tokens_checked() {
        assert_eq!(PageRequest::parse(0, "").unwrap().size, DEFAULT_PAGE_SIZE);
        assert_eq!(PageRequest::parse(50_000, "").unwrap().size, MAX_PAGE_SIZE);
        assert_eq!(
            PageRequest::parse(-1, "").unwrap_err().code(),
            tonic::Code::InvalidArgument
        );
        assert!(
            PageRequest::parse(1, "!!")
                .unwrap_err()
                .message()
                .contains("page_token")
        );
    }
}
