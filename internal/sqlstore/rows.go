package sqlstore

// collect reads every row of a result through scan into a non-nil slice,
// and closes the rows.
func collect[T any](rows Rows, err error, scan func(Rows) (T, error)) ([]T, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// scanString reads a one-column text result.
func scanString(r Rows) (string, error) {
	var s string
	err := r.Scan(&s)
	return s, err
}

// collectStrings reads a one-column text result into a non-nil slice.
func collectStrings(rows Rows, err error) ([]string, error) {
	return collect(rows, err, scanString)
}
