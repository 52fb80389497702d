-- fusec specs in Neovim: `fusec lsp` for *.fusec.json files and JSON files that name the
-- fusec schema or carry `"fusec": N`. Neovim 0.11+ (vim.lsp.config); for older versions
-- with nvim-lspconfig see docs/editors.md. Copy into your config (e.g. plugin/fusec.lua).

local function is_fusec_spec(bufnr)
  local name = vim.api.nvim_buf_get_name(bufnr)
  if name:match('%.fusec%.json$') then
    return true
  end
  local head = table.concat(vim.api.nvim_buf_get_lines(bufnr, 0, 200, false), '\n'):sub(1, 4096)
  return head:find('"%$schema"%s*:%s*"[^"]*fusec') ~= nil
    or head:find('"fusec"%s*:%s*%d+%s*[,}]') ~= nil
end

vim.lsp.config('fusec', {
  cmd = { 'fusec', 'lsp' }, -- or { vim.fn.getcwd() .. '/.venv/bin/fusec', 'lsp' }
  filetypes = { 'json', 'jsonc' },
  root_dir = function(bufnr, on_dir)
    if is_fusec_spec(bufnr) then -- other JSON files never start the server
      local file = vim.api.nvim_buf_get_name(bufnr)
      on_dir(vim.fs.root(bufnr, { '.git', 'pyproject.toml' }) or vim.fs.dirname(file))
    end
  end,
})
vim.lsp.enable('fusec')
