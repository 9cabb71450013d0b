defmodule ScopeAppWeb.Layouts do
  use ScopeAppWeb, :html

  def root(assigns) do
    ~H"""
    <!DOCTYPE html>
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="csrf-token" content={Phoenix.Controller.get_csrf_token()} />
        <title>ScopeApp</title>
        <link rel="icon" href="data:," />
        <script type="module" src="/assets/app.js">
        </script>
      </head>
      <body>
        <%= @inner_content %>
      </body>
    </html>
    """
  end

  def app(assigns) do
    ~H"""
    <main><%= @inner_content %></main>
    """
  end
end
