/* offer.h: what the landing page says of the consultant beyond the
 * price: "About me" (consultant_bio, consultant_photo,
 * consultant_credentials), the sample question and answer, the approved
 * testimonials and the share of happy ratings. */
#ifndef PMB_OFFER_H
#define PMB_OFFER_H

struct request;
struct tvars;

/* How many approved quotes the landing page shows, newest first. */
#define OFFER_QUOTES	3

/* Reads what the settings name, once, at start (after conf_load and
 * tmpl_load): checks that consultant_photo is a JPEG, PNG or WebP file
 * in the static folder (the folder "static" beside template_dir) and
 * reads its size; splits the bio and the sample question into
 * paragraphs and the credentials into a list; renders sample_answer's
 * Markdown with cmark. Returns 1, or 0 with a message in err. */
int	 offer_load(char *err, size_t errsz);
/* Frees what offer_load made. */
void	 offer_free(void);
/* Sets the landing page's "About me" and sample variables (no database:
 * all of it was made by offer_load). */
void	 offer_vars(struct tvars *);
/* Sets the landing page's quotes (list "quotes": name, business,
 * sentence), "happy_share" (the sentence, when there are at least
 * happy_min_ratings ratings) and "has_proof" (either), read by one
 * statement (one snapshot) from the index testimonials_status and the
 * two rows of rating_counts. Returns 1, or 0 without the store or on a
 * database error (the page shows neither). */
int	 offer_proof_vars(struct request *, struct tvars *);

#endif
