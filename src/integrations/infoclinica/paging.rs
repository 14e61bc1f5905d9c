//! Paged lists (`FIRSTROW`/`LASTROW` in the request, `RECORDSDATA/ITEMSNUMBER` in the
//! answer, §5 #24): which window to ask for next, and the check that the pages add up.
//!
//! A short page is never taken for the end of the list: with `ITEMSNUMBER` (the count of
//! every matching row) each page must bring exactly the rows asked for, or the rest of the
//! list when fewer remain, and the list ends when the rows received reach `ITEMSNUMBER`.
//! A page with fewer or more rows, an `ITEMSNUMBER` that changes between pages (the list
//! changed while it was read) or one sent on some pages only is [`MisError::Malformed`].
//! Only when the first page carries no `ITEMSNUMBER` is there nothing to count against; then
//! a page shorter than asked ends the list, and the sync's deactivation guard is what stands
//! between a truncated list and the directory.

use super::MisError;

/// Walks one paged list; see the module documentation for the rules.
#[derive(Debug, Clone)]
pub struct Pager {
    op: &'static str,
    page_size: u32,
    max_pages: u32,
    pages: u32,
    received: u64,
    /// `None` before the first page; then the first page's `ITEMSNUMBER`, if it had one.
    total: Option<Option<u64>>,
    done: bool,
}

impl Pager {
    /// A walk over `op` asking `page_size` rows a page (at least 1) and at most `max_pages`
    /// pages; a longer list is refused rather than read forever.
    pub fn new(op: &'static str, page_size: u32, max_pages: u32) -> Self {
        Self {
            op,
            page_size: page_size.max(1),
            max_pages,
            pages: 0,
            received: 0,
            total: None,
            done: false,
        }
    }

    /// The rows to ask for next, `(FIRSTROW, LASTROW)`, 1-based and inclusive; `None` when
    /// the list is complete.
    pub fn next_window(&self) -> Option<(u32, u32)> {
        if self.done {
            return None;
        }
        let first = u32::try_from(self.received + 1).ok()?;
        Some((first, first.saturating_add(self.page_size - 1)))
    }

    /// Rows received so far.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// Checks the page just received for [`Self::next_window`]: `rows` items and its
    /// `ITEMSNUMBER`.
    pub fn accept(&mut self, rows: usize, items_number: Option<u32>) -> Result<(), MisError> {
        let op = self.op;
        let malformed = |text: String| Err(MisError::Malformed(format!("{op}: {text}")));
        let Some((first, last)) = self.next_window() else {
            return malformed("a page after the end of the list".into());
        };
        self.pages += 1;
        let rows = rows as u64;
        let items_number = items_number.map(u64::from);
        let total = match (self.total, items_number) {
            (None, total) => {
                self.total = Some(total);
                if let Some(total) = total {
                    let most = u64::from(self.page_size) * u64::from(self.max_pages);
                    if total > most {
                        return malformed(format!(
                            "ITEMSNUMBER {total} is more than the {most} rows this client reads"
                        ));
                    }
                }
                total
            }
            (Some(Some(was)), Some(now)) if was == now => Some(now),
            (Some(Some(was)), Some(now)) => {
                return malformed(format!(
                    "ITEMSNUMBER changed from {was} to {now} between pages (the list changed while it was read)"
                ));
            }
            (Some(Some(was)), None) => {
                return malformed(format!(
                    "page {} has no ITEMSNUMBER, the first had {was}",
                    self.pages
                ));
            }
            (Some(None), Some(now)) => {
                return malformed(format!(
                    "page {} has ITEMSNUMBER {now}, the first had none",
                    self.pages
                ));
            }
            (Some(None), None) => None,
        };
        let asked = u64::from(self.page_size);
        match total {
            Some(total) => {
                let expected = total.saturating_sub(self.received).min(asked);
                if rows < expected {
                    return malformed(format!(
                        "short page: rows {first}..{last} brought {rows} of the {expected} expected \
                         (ITEMSNUMBER {total}, {} read before)",
                        self.received
                    ));
                }
                if rows > expected {
                    return malformed(format!(
                        "rows {first}..{last} brought {rows}, more than the {expected} expected \
                         (ITEMSNUMBER {total}, {} read before)",
                        self.received
                    ));
                }
                self.received += rows;
                self.done = self.received == total;
            }
            None => {
                if rows > asked {
                    return malformed(format!(
                        "rows {first}..{last} brought {rows}, more than the {asked} asked for"
                    ));
                }
                self.received += rows;
                self.done = rows < asked;
                if !self.done && self.pages >= self.max_pages {
                    return malformed(format!(
                        "the list did not end within {} pages",
                        self.max_pages
                    ));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Walks a list whose pages bring `pages` rows each with `total`; the windows asked.
    fn walk(size: u32, pages: &[(usize, Option<u32>)]) -> (Vec<(u32, u32)>, Result<u64, MisError>) {
        let mut pager = Pager::new("LIST", size, 10);
        let mut windows = Vec::new();
        for &(rows, total) in pages {
            let Some(window) = pager.next_window() else {
                break;
            };
            windows.push(window);
            if let Err(e) = pager.accept(rows, total) {
                return (windows, Err(e));
            }
        }
        let result = if pager.next_window().is_none() {
            Ok(pager.received())
        } else {
            Err(MisError::Malformed("not finished".into()))
        };
        (windows, result)
    }

    #[test]
    fn pages_that_add_up_to_itemsnumber_end_the_list() {
        let (windows, result) = walk(100, &[(100, Some(148)), (48, Some(148))]);
        assert_eq!(windows, [(1, 100), (101, 200)]);
        assert_eq!(result.expect("complete"), 148);
        // A list that fills its last page exactly needs no empty page after it.
        let (windows, result) = walk(10, &[(10, Some(20)), (10, Some(20))]);
        assert_eq!(windows.len(), 2);
        assert_eq!(result.expect("complete"), 20);
        // An empty list is complete after one page.
        let (_, result) = walk(100, &[(0, Some(0))]);
        assert_eq!(result.expect("empty"), 0);
    }

    #[test]
    fn a_short_page_is_an_error_not_the_end() {
        // 10 rows of the 48 ITEMSNUMBER counts, on the first page.
        let (_, result) = walk(100, &[(10, Some(48))]);
        let error = result.expect_err("short").to_string();
        assert!(error.contains("short page"), "{error}");
        assert!(error.contains("10 of the 48"), "{error}");
        // A short middle page.
        let (_, result) = walk(10, &[(10, Some(25)), (7, Some(25))]);
        assert!(result.is_err());
        // An empty page before the end.
        let (_, result) = walk(10, &[(10, Some(25)), (0, Some(25))]);
        assert!(result.is_err());
    }

    #[test]
    fn more_rows_than_expected_or_a_moving_total_are_errors() {
        let (_, result) = walk(10, &[(11, Some(30))]);
        assert!(
            result
                .expect_err("too many")
                .to_string()
                .contains("more than")
        );
        let (_, result) = walk(10, &[(3, Some(0))]);
        assert!(result.is_err(), "rows beyond ITEMSNUMBER 0");
        let (_, result) = walk(10, &[(10, Some(25)), (10, Some(26))]);
        assert!(result.expect_err("moved").to_string().contains("changed"));
        let (_, result) = walk(10, &[(10, Some(25)), (10, None)]);
        assert!(result.is_err());
        let (_, result) = walk(10, &[(10, None), (10, Some(25))]);
        assert!(result.is_err());
        let (_, result) = walk(10, &[(10, Some(101))]);
        assert!(
            result
                .expect_err("longer than 10 pages")
                .to_string()
                .contains("more than the 100 rows")
        );
    }

    #[test]
    fn without_itemsnumber_a_page_shorter_than_asked_ends_the_list() {
        let (windows, result) = walk(10, &[(10, None), (4, None)]);
        assert_eq!(windows, [(1, 10), (11, 20)]);
        assert_eq!(result.expect("complete"), 14);
        let (_, result) = walk(10, &[(10, None); 11]);
        assert!(
            result
                .expect_err("endless")
                .to_string()
                .contains("within 10 pages")
        );
    }
}
