;;; fusec.el --- fusec specs through eglot and `fusec lsp'  -*- lexical-binding: t; -*-

;; Emacs 29+ (eglot built in). Load it from your init file:
;;   (load "/path/to/fusec/editors/emacs/fusec.el")
;; A fusec spec (a *.fusec.json file, or a JSON file that names the fusec schema or
;; carries "fusec": N near its top) opens in `fusec-json-mode', a JSON mode that
;; starts `fusec lsp' through eglot.  Other JSON files are left alone.

;;; Code:

(require 'eglot)

(defcustom fusec-program "fusec"
  "The fusec executable (a name on PATH, or a path such as \".venv/bin/fusec\")."
  :type 'string
  :group 'eglot)

(defun fusec-spec-p ()
  "Whether the current buffer's first 4096 characters look like a fusec spec."
  (save-excursion
    (save-restriction
      (widen)
      (let ((case-fold-search nil)
            (limit (min (point-max) (+ (point-min) 4096))))
        (goto-char (point-min))
        (or (re-search-forward "\"\\$schema\"[ \t\r\n]*:[ \t\r\n]*\"[^\"]*fusec" limit t)
            (progn
              (goto-char (point-min))
              (re-search-forward "\"fusec\"[ \t\r\n]*:[ \t\r\n]*[0-9]+[ \t\r\n]*[,}]" limit t)))))))

;; json-ts-mode when the JSON tree-sitter grammar is installed, else js-json-mode.
(defalias 'fusec-json-parent-mode
  (if (and (fboundp 'treesit-ready-p) (treesit-ready-p 'json t)) #'json-ts-mode #'js-json-mode))

(define-derived-mode fusec-json-mode fusec-json-parent-mode "fusec"
  "Major mode for fusec specs: JSON, checked by `fusec lsp' through eglot.")

(add-to-list 'auto-mode-alist '("\\.fusec\\.json\\'" . fusec-json-mode))
(add-to-list 'magic-mode-alist '(fusec-spec-p . fusec-json-mode))
(add-to-list 'eglot-server-programs
             `((fusec-json-mode :language-id "json")
               . ,(lambda (&rest _) (list fusec-program "lsp"))))
(add-hook 'fusec-json-mode-hook #'eglot-ensure)

(provide 'fusec)
;;; fusec.el ends here
