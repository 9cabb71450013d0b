defmodule ScopeAppWeb.SessionController do
  use ScopeAppWeb, :controller

  def new(conn, _params), do: render_form(conn, nil)

  def create(conn, %{"user" => %{"email" => email, "password" => password}}) do
    if password == "correct horse",
      do: conn |> put_session(:user, email) |> text("welcome #{email}"),
      else: conn |> put_status(401) |> render_form("wrong password")
  end

  defp render_form(conn, error) do
    conn
    |> put_view(ScopeAppWeb.SessionHTML)
    |> render(:new, error: error, token: get_csrf_token())
  end
end

defmodule ScopeAppWeb.SessionHTML do
  use ScopeAppWeb, :html

  def new(assigns) do
    ~H"""
    <form action="/login" method="post" id="login">
      <input type="hidden" name="_csrf_token" value={@token} />
      <p :if={@error} class="error"><%= @error %></p>
      <input type="email" name="user[email]" id="email" />
      <input type="password" name="user[password]" id="password" />
      <button type="submit">Log in</button>
    </form>
    """
  end
end
